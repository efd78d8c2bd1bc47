-- presence: channels and membership, owned by the presence service.
CREATE SCHEMA presence;

CREATE TABLE presence.channels (
    name_folded  text PRIMARY KEY,
    name         text NOT NULL,
    topic        text,
    topic_set_by text,
    topic_set_at timestamptz,
    modes        text NOT NULL DEFAULT 'nt',
    key          text,
    user_limit   integer,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE presence.members (
    channel    text NOT NULL REFERENCES presence.channels (name_folded) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    is_op      boolean NOT NULL DEFAULT false,
    is_voiced  boolean NOT NULL DEFAULT false,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, session_id)
);
CREATE INDEX members_session_idx ON presence.members (session_id);

CREATE TABLE presence.outbox (
    id           bigserial PRIMARY KEY,
    target       text NOT NULL,
    subject      text NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX presence_outbox_pending_idx ON presence.outbox (target, id) WHERE published_at IS NULL;
