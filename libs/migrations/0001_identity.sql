-- identity: owned by the gateway.
CREATE SCHEMA identity;

CREATE TABLE identity.sessions (
    id            uuid PRIMARY KEY,
    nick          text NOT NULL,
    nick_folded   text NOT NULL UNIQUE,
    password_hash text,
    signing_key   text,
    away_message  text,
    is_oper       boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity.clients (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES identity.sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    user_agent  text,
    -- the highest seq this client has acknowledged by polling past it
    acked_seq   bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_session_idx ON identity.clients (session_id);

CREATE TABLE identity.idempotency (
    session_id   uuid NOT NULL REFERENCES identity.sessions (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    event_id     uuid NOT NULL,
    status       integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, key)
);
CREATE INDEX idempotency_created_idx ON identity.idempotency (created_at);

CREATE TABLE identity.outbox (
    id           bigserial PRIMARY KEY,
    target       text NOT NULL,
    subject      text NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX identity_outbox_pending_idx ON identity.outbox (target, id) WHERE published_at IS NULL;
