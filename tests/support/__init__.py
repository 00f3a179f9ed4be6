"""What the tests share: servers, clients, models and the legacy builders."""
