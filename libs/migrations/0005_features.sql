-- Beyond IRC: replies, reactions, edits, deletes, pins, read markers, search.
-- Every table below that refers to a message holds a foreign key to it, so
-- trimming history (or anything else that deletes a message) takes these rows
-- with it: nothing is ever left pointing at nothing.

-- A reply and the message it replies to (both in the same target).
CREATE TABLE delivery.replies (
    message_id bigint PRIMARY KEY REFERENCES delivery.messages (id) ON DELETE CASCADE,
    parent_id  bigint NOT NULL REFERENCES delivery.messages (id) ON DELETE CASCADE
);
CREATE INDEX replies_parent_idx ON delivery.replies (parent_id);

-- One reaction per session per emoji per message.
CREATE TABLE delivery.reactions (
    message_id bigint NOT NULL REFERENCES delivery.messages (id) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    emoji      text NOT NULL,
    nick       text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, session_id, emoji)
);

-- Edit history: the body each edit replaced (the message row holds the current one).
CREATE TABLE delivery.edits (
    message_id bigint NOT NULL REFERENCES delivery.messages (id) ON DELETE CASCADE,
    edit_event uuid NOT NULL,
    previous   jsonb NOT NULL,
    edited_at  timestamptz NOT NULL,
    PRIMARY KEY (message_id, edit_event)
);

-- A deleted message keeps its row (its text emptied) and gets a tombstone.
CREATE TABLE delivery.tombstones (
    message_id bigint PRIMARY KEY REFERENCES delivery.messages (id) ON DELETE CASCADE,
    deleted_by text NOT NULL,
    deleted_at timestamptz NOT NULL
);

-- Pinned messages of a channel.
CREATE TABLE delivery.pins (
    message_id bigint PRIMARY KEY REFERENCES delivery.messages (id) ON DELETE CASCADE,
    channel    text NOT NULL,
    pinned_by  text NOT NULL,
    pinned_at  timestamptz NOT NULL
);
CREATE INDEX pins_channel_idx ON delivery.pins (channel, pinned_at);

-- The item that announced a reaction, edit, delete or pin, and the message it
-- concerns. When that message goes, message_id turns NULL and the item is
-- removed as soon as no queue holds it.
CREATE TABLE delivery.notes (
    item_id    bigint PRIMARY KEY REFERENCES delivery.messages (id) ON DELETE CASCADE,
    message_id bigint REFERENCES delivery.messages (id) ON DELETE SET NULL
);
CREATE INDEX notes_message_idx ON delivery.notes (message_id);
CREATE INDEX notes_orphan_idx ON delivery.notes (item_id) WHERE message_id IS NULL;

-- "Read up to" per session and target: one position shared by all its clients.
CREATE TABLE delivery.read_markers (
    session_id uuid NOT NULL,
    target     text NOT NULL,
    pos        bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, target)
);

-- Full-text search over chat lines ('simple': no stemming, any language).
CREATE INDEX messages_search_idx ON delivery.messages
    USING gin (jsonb_to_tsvector('simple', body, '["string"]'))
    WHERE command IN ('PRIVMSG', 'NOTICE');

-- A session's DMs, for its unread counts: the two halves of dm:<a>:<b>.
CREATE INDEX targets_dm_first_idx ON delivery.targets (split_part(target, ':', 2))
    WHERE target LIKE 'dm:%';
CREATE INDEX targets_dm_second_idx ON delivery.targets (split_part(target, ':', 3))
    WHERE target LIKE 'dm:%';
