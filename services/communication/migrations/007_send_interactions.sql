-- A sent message is logged as an interaction (id = the send's id) in the transaction that records SENT, and the
-- provider's events raise that interaction's delivery state as they raise the send's.
ALTER TABLE communication.interactions ADD COLUMN delivery_state smallint NOT NULL DEFAULT 0;
