-- The access audit: one row per answered check, hash-chained in id order within its lane.
-- Several writers append at once, each to its own lane (a chain of its own), so that one slow
-- commit does not hold up every answer. hash = SHA-256(prev_hash || canonical encoding of the
-- row); see src/audit/chain.rs.
create table disclosures (
    id          bigint generated always as identity primary key,
    lane        smallint not null,
    at          timestamptz not null,
    -- No foreign keys: the writer takes the ids from rows it just read, and a key check per
    -- inserted row (plus a share lock on the asking party's row) would cost more than the
    -- lookup that produced the answer. The hash chain, not the database, vouches for the log.
    party_id    bigint not null,
    person_id   bigint,   -- null when nothing was disclosed
    coverage_id bigint,
    kind        text not null,
    check_id    uuid not null,
    validity    smallint not null,
    prev_hash   bytea not null,
    hash        bytea not null
);
create index disclosures_person on disclosures (person_id, at) where person_id is not null;
create unique index disclosures_check on disclosures (check_id);
create index disclosures_lane on disclosures (lane, id);
