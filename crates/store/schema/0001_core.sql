-- Core tables: insurers, persons, coverages with their full history, parties and enrolment batches.
--
-- History is append-only: an `update` adds a row to coverage_versions, a `lose` adds a row to
-- coverage_losses. coverages.lost_on/loss_reason mirror the latest loss so that the hot lookup
-- path needs no extra join; coverage_losses keeps every loss ever recorded.

create table insurers (
    insurer_number text primary key check (insurer_number ~ '^[0-9]{8}$'),
    name           text,
    created_at     timestamptz not null default now()
);

-- A person is only an internal id and the keyed link value (HMAC of the My Number computed at
-- the edge); the number itself is never stored.
create table persons (
    id         bigint generated always as identity primary key,
    link       bytea not null unique check (length(link) = 32),
    created_at timestamptz not null default now()
);

create table parties (
    id            bigint generated always as identity primary key,
    role          text not null check (role in ('facility', 'claims', 'insurer', 'admin')),
    name          text,
    facility_code text check (facility_code ~ '^[0-9]{10}$'),
    token_hash    bytea not null unique check (length(token_hash) = 32),
    created_at    timestamptz not null default now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    check ((role = 'facility') = (facility_code is not null))
);

create table party_insurers (
    party_id       bigint not null references parties (id),
    insurer_number text not null references insurers (insurer_number),
    primary key (party_id, insurer_number)
);

-- One row per Idempotency-Key; the report is the answer returned for every repeat.
create table enrollment_batches (
    id          text primary key check (length(id) between 1 and 200),
    party_id    bigint references parties (id),
    status      text not null check (status in ('applied', 'rejected')),
    report      jsonb not null,
    received_at timestamptz not null default now()
);

-- A coverage is one insurer's coverage of one person under one card key. A key is unique among
-- active coverages, and may be re-used after the coverage holding it is lost.
create table coverages (
    id             bigint generated always as identity primary key,
    person_id      bigint not null references persons (id),
    insurer_number text not null references insurers (insurer_number),
    symbol         text not null,   -- '' when the card shows none
    number         text not null,
    branch         text not null,   -- '' when the card shows none
    acquired_on    date not null,
    lost_on        date,
    loss_reason    text check (loss_reason in ('01', '02', '03', '99')),
    batch_id       text not null,
    line           integer not null,
    check ((lost_on is null) = (loss_reason is null)),
    check (lost_on is null or lost_on >= acquired_on)
);
create index coverages_key on coverages (insurer_number, number, symbol, branch);
create unique index coverages_active_key on coverages (insurer_number, number, symbol, branch)
    where lost_on is null;
create index coverages_person on coverages (person_id);

-- The attributes of a coverage from effective_on until the next version. Never updated.
create table coverage_versions (
    id                   bigint generated always as identity primary key,
    coverage_id          bigint not null references coverages (id),
    effective_on         date not null,
    card_classification  text not null,
    relationship         text not null check (relationship in ('1', '2')),
    insured_name         text not null,
    name                 text not null,
    name_kana            text not null,
    sex                  text not null check (sex in ('1', '2', '3')),
    birth_date           date not null,
    postcode             text,
    address              text,
    copay_ratio          text not null,
    card_issued_on       date,
    card_valid_from      date,
    card_valid_to        date,
    -- 高齢受給者証 (elderly recipient certificate)
    elderly_copay_ratio  text,
    elderly_valid_from   date,
    elderly_valid_to     date,
    -- 限度額適用認定証 (high-cost limit certificate)
    limit_classification text,
    limit_category       text,
    limit_valid_from     date,
    limit_valid_to       date,
    batch_id             text not null,
    line                 integer not null,
    recorded_at          timestamptz not null default now()
);
create index coverage_versions_at on coverage_versions (coverage_id, effective_on desc, id desc);

-- Every loss ever reported, in the order it was recorded.
create table coverage_losses (
    id          bigint generated always as identity primary key,
    coverage_id bigint not null references coverages (id),
    lost_on     date not null,
    loss_reason text not null,
    batch_id    text not null,
    line        integer not null,
    recorded_at timestamptz not null default now()
);
create index coverage_losses_coverage on coverage_losses (coverage_id);
