-- Per-purpose health IDs (医療等ID); see src/health_id/FORMAT.md.
--
-- A purpose names who may receive and resolve its IDs and the key version new IDs are derived
-- under. Each person gets a random secret base the first time an ID is issued: IDs are derived
-- from it, never from the My Number link, so holding the link key and a My Number is not enough
-- to compute anyone's ID. Keys themselves are never stored here.

create table purposes (
    id          bigint generated always as identity primary key,
    name        text not null unique check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    key_version integer not null default 1 check (key_version >= 1),
    created_at  timestamptz not null default now()
);

create table purpose_parties (
    purpose_id bigint not null references purposes (id),
    party_id   bigint not null references parties (id),
    primary key (purpose_id, party_id)
);

create table person_bases (
    person_id  bigint primary key references persons (id),
    base       bytea not null check (length(base) = 32),
    created_at timestamptz not null default now()
);

-- Every ID ever issued, revoked ones included: an ID is never given to a second person, in any
-- epoch or key version (health_ids_unique). A person holds at most one current ID per purpose.
create table health_ids (
    id          bigint generated always as identity primary key,
    purpose_id  bigint not null references purposes (id),
    health_id   text not null,
    person_id   bigint not null references persons (id),
    key_version integer not null,
    epoch       integer not null check (epoch >= 0),
    counter     integer not null check (counter >= 0),
    issued_at   timestamptz not null default now(),
    revoked_at  timestamptz,
    constraint health_ids_unique unique (purpose_id, health_id)
);
create unique index health_ids_current on health_ids (purpose_id, person_id)
    where revoked_at is null;

-- The checkpoint of a key rotation: persons up to last_person_id hold IDs under key_version.
create table health_id_rotations (
    purpose_id     bigint not null references purposes (id),
    key_version    integer not null,
    last_person_id bigint not null default 0,
    started_at     timestamptz not null default now(),
    finished_at    timestamptz,
    primary key (purpose_id, key_version)
);
