-- Proof of work for new sessions (services/gateway/pow.py).

-- Keys every gateway replica shares, created by the first one to start.
CREATE TABLE identity.server_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Challenges already paid for: each buys one session. Rows go once they expire.
CREATE TABLE identity.spent_challenges (
    challenge  text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX spent_challenges_expires_idx ON identity.spent_challenges (expires_at);
