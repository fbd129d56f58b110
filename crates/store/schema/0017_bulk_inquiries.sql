-- The asynchronous bulk inquiry (一括照会): a facility uploads up to 100,000 queries, is given a
-- reception number at once, and reads the answers later.
create table bulk_jobs (
    id                bigint generated always as identity primary key,
    -- Random (128 bits, hex): knowing one reception number tells nothing of another.
    reception_number  text not null unique,
    party_id          bigint not null references parties (id),
    received_at       timestamptz not null default now(),
    -- The date of care of the queries that name none: the day of receipt in Japan.
    received_on       date not null,
    total             integer not null,
    -- Queries answered (their disclosure recorded) and queries refused at the upload.
    answered          integer not null default 0,
    rejected          integer not null,
    done_at           timestamptz
);
create index bulk_jobs_received on bulk_jobs (received_at);

-- One query of a job and its result. `state`: 0 waiting; 1 answered, its disclosure (under
-- `check_id`) being recorded, the answer not shown yet; 2 done (answered and recorded, or
-- refused at the upload). A chunk moves from 0 to 1 in one commit, its disclosures are recorded,
-- then it moves to 2 in a second commit: a worker that stops between the two leaves rows at 1,
-- which the next worker settles by looking their check ids up in the audit log (recorded: done;
-- not: answered again). No query is ever disclosed twice, and none is shown unrecorded.
create table bulk_items (
    job_id    bigint not null references bulk_jobs (id) on delete cascade,
    idx       integer not null,
    -- The query as sent (a JSON value, or a CSV line's cells by column).
    query     jsonb not null,
    state     smallint not null check (state between 0 and 2),
    check_id  uuid,
    -- The answer, or the error of a query refused at the upload.
    result    jsonb,
    primary key (job_id, idx)
);
-- One row per unfinished job: what a worker locks (`for update skip locked`) in a session of its
-- own for as long as it works on the job, so that a job is worked on by one server at a time and
-- is free again the moment that server's session ends (a crash, a restart). The lock is on this
-- row rather than the job's, whose counters the worker's other sessions update meanwhile. The
-- worker deletes it, in the locking transaction, once the job is done.
create table bulk_leases (
    job_id  bigint primary key references bulk_jobs (id) on delete cascade
);

create index bulk_items_open on bulk_items (job_id, idx) where state < 2;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'onshi_app') then
        grant select, insert, update, delete on bulk_jobs, bulk_items, bulk_leases to onshi_app;
    end if;
end
$$;
