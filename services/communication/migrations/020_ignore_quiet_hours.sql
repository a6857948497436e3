-- A send may be delivered inside the contact's quiet hours (Send.ignore_quiet_hours: what the person is waiting for,
-- such as a password reset). Every existing send keeps to them.
ALTER TABLE communication.sends ADD COLUMN ignore_quiet_hours boolean NOT NULL DEFAULT false;
