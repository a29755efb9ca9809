-- A failed step's class (`expression`, `budget`, `server_error`, ...), so
-- that operators and tools branch on a class, never on an error's wording.
-- Steps may now also be `skipped` (their `when` was false): the status
-- column is free text, so only the class is new.
ALTER TABLE journal ADD COLUMN error_class TEXT;
