-- mfa_tickets.attempts: the codes tried with the ticket. A completion
-- counts one in a conditional UPDATE before it checks the code, and none
-- is counted past the cap, so a ticket allows at most that many guesses
-- whatever the number of instances (factor.Store.AttemptTicket).
ALTER TABLE mfa_tickets ADD COLUMN attempts INT NOT NULL DEFAULT 0;
