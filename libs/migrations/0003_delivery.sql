-- delivery: projections of the event stream, owned by fanout.
CREATE SCHEMA delivery;

-- Each message (any delivered event) is stored once.
CREATE TABLE delivery.messages (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    target     text NOT NULL,
    pos        bigint NOT NULL,
    command    text NOT NULL,
    sender     text NOT NULL,
    sender_id  uuid,
    to_name    text NOT NULL,
    params     jsonb NOT NULL,
    body       jsonb NOT NULL,
    meta       jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (target, pos)
);

-- The last history position handed out per target.
CREATE TABLE delivery.targets (
    target   text PRIMARY KEY,
    last_pos bigint NOT NULL
);

-- Channel membership as of the stream position fanout has reached.
CREATE TABLE delivery.members (
    channel    text NOT NULL,
    session_id uuid NOT NULL,
    PRIMARY KEY (channel, session_id)
);
CREATE INDEX delivery_members_session_idx ON delivery.members (session_id);

-- The last seq handed out per client; its row lock orders concurrent writers.
CREATE TABLE delivery.client_seq (
    client_id uuid PRIMARY KEY,
    last_seq  bigint NOT NULL
);

CREATE TABLE delivery.client_queues (
    client_id  uuid NOT NULL,
    seq        bigint NOT NULL,
    message_id bigint NOT NULL REFERENCES delivery.messages (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, seq)
);
CREATE INDEX client_queues_message_idx ON delivery.client_queues (message_id);

-- Tracking: the last stream sequence projected per partition, written in the
-- same transaction as the projection so that a redelivery is recognised.
CREATE TABLE delivery.partition_offsets (
    stream     text NOT NULL,
    partition  integer NOT NULL,
    stream_seq bigint NOT NULL,
    PRIMARY KEY (stream, partition)
);

-- Events that failed every attempt: parked, never silently dropped.
CREATE TABLE delivery.poison (
    stream      text NOT NULL,
    stream_seq  bigint NOT NULL,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    error       text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, stream_seq)
);
