-- delivery: each item's JSON, as queue reads send it.

-- A long-poll page was built item by item from the message's columns: three
-- jsonb values decoded and encoded again, a time formatted, an object made,
-- for every queue row read. Fanout now stores the item encoded (without its
-- seq and position, which the read splices in), and a read sends it as it is.
-- Rows written before this migration have none, and are built as before.
ALTER TABLE delivery.messages ADD COLUMN wire bytea;

-- An edit or a delete rewrites the item's columns: its stored JSON goes with
-- any such update, whoever makes it (a fanout worker of the previous release
-- during a rolling upgrade included), and the item is built from its columns.
CREATE FUNCTION delivery.forget_wire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.wire := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_forget_wire
    BEFORE UPDATE OF event_id, target, pos, command, sender, sender_id, to_name,
                     params, body, meta, created_at
    ON delivery.messages
    FOR EACH ROW EXECUTE FUNCTION delivery.forget_wire();
