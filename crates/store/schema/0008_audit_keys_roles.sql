-- Keyed audit chains, and the application role the server connects as.
--
-- 1. Every record written from now on carries the key epoch of its writer session: its hash is an
--    HMAC under a chain key derived from the audit key, the lane and the epoch (src/audit/key.rs).
--    Records written before this migration keep their plain SHA-256 links; each lane's unkeyed
--    head is frozen here, so that verify accepts the unkeyed scheme up to that head and no further.
alter table disclosures add column key_epoch bigint;

create table audit_unkeyed_heads (
    lane    smallint primary key,
    last_id bigint not null,
    hash    bytea not null,
    records bigint not null
);
insert into audit_unkeyed_heads (lane, last_id, hash, records)
select distinct on (lane) lane, id, hash, count(*) over (partition by lane)
from disclosures
order by lane, id desc;

-- 2. The application role. Migrations run as the schema's owner; `onshi serve` connects as
--    onshi_app (or a login role that is a member of it), which may read and append the audit but
--    never change or remove it, and has no DELETE or TRUNCATE anywhere. Roles are cluster-wide:
--    several databases (the tests create one each) may run this at once, so a concurrent creation
--    is not an error. The role is created without LOGIN: the operator grants it to a login role or
--    gives it a password and LOGIN (README, "Database roles").
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'onshi_app') then
        begin
            create role onshi_app nologin;
        exception
            when duplicate_object or unique_violation then null;
            when insufficient_privilege then
                raise exception 'the migrating role may not create roles: create the role onshi_app first (README, "Database roles")';
        end;
    end if;
end
$$;

grant select, insert on disclosures to onshi_app;
grant select on audit_unkeyed_heads, schema_migrations to onshi_app;
grant select, insert, update on insurers, parties, enrollment_batches, coverages, challenges,
    purposes, health_ids, health_id_rotations to onshi_app;
grant select, insert on persons, party_insurers, coverage_versions, coverage_losses, card_links,
    consents, purpose_parties, person_bases, party_certificates to onshi_app;

-- Tables of earlier migrations that had no grant of their own (the role did not exist yet when
-- they ran) get reading, adding and changing rows, never deleting.
do $$
declare
    t regclass;
begin
    for t in
        select c.oid::regclass from pg_class c
        where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p')
          and not exists (select 1 from aclexplode(c.relacl) a where a.grantee = 'onshi_app'::regrole)
    loop
        execute format('grant select, insert, update on %s to onshi_app', t);
    end loop;
end
$$;
