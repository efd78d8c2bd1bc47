-- delivery: cheaper writes of queue rows and per-client counters.

-- Every queue row checked its message by a foreign-key trigger, a lookup per
-- row: a third of the time a message to a 10,000-member channel took to
-- commit. Queue rows are written only in the transaction that writes their
-- message, and nothing deletes a message while a queue row refers to it
-- (retention and the change sweep check first), so the key guarded nothing.
ALTER TABLE delivery.client_queues DROP CONSTRAINT client_queues_message_id_fkey;

-- Counters and cursors are updated in place all the time: room in each page
-- keeps those updates HOT (no index entry per update).
ALTER TABLE delivery.client_seq SET (fillfactor = 50);
ALTER TABLE identity.clients SET (fillfactor = 70);
