-- The access audit: one row per answered check, hash-chained in id order within its lane.
-- Several writers append at once, each to its own lane (a chain of its own), so that one slow
-- commit does not hold up every answer. hash = SHA-256(prev_hash || canonical encoding of the
-- row); see src/audit/chain.rs.
create table disclosures (
    id          bigint generated always as identity primary key,
    lane        smallint not null,
    at          timestamptz not null,
    party_id    bigint not null references parties (id),
    person_id   bigint references persons (id),   -- null when nothing was disclosed
    coverage_id bigint references coverages (id),
    kind        text not null,
    check_id    uuid not null,
    validity    smallint not null,
    prev_hash   bytea not null,
    hash        bytea not null
);
create index disclosures_person on disclosures (person_id, at) where person_id is not null;
create unique index disclosures_check on disclosures (check_id);
create index disclosures_lane on disclosures (lane, id);
