-- A bulk upload may name itself with an Idempotency-Key: sent again with the same key (a
-- retry after a lost answer, a restarted bridge), it answers the first job's reception number
-- and stores nothing. Expand step: a nullable column, old code keeps working; the unique index
-- that makes a key one job per party is built concurrently by 0019.
alter table bulk_jobs add column if not exists idempotency_key text;
