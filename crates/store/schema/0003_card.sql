-- The My Number card path: single-use challenges, certificate links and reader consents.

-- A nonce for one card signature, bound to the facility that asked for it.
create table challenges (
    id         uuid primary key,
    party_id   bigint not null references parties (id),
    nonce      bytea not null check (length(nonce) = 32),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at    timestamptz
);
create index challenges_expiry on challenges (expires_at);

-- Which person a user-authentication certificate stands for, by issuer and serial number.
-- A renewed card has a new certificate and gets a row of its own.
create table card_links (
    issuer      bytea not null,   -- the issuer Name, DER
    serial      bytea not null,   -- the serial number's bytes
    person_id   bigint not null references persons (id),
    not_after   timestamptz not null,
    linked_at   timestamptz not null default now(),
    linked_by   bigint references parties (id),   -- null: linked by an operator
    primary key (issuer, serial)
);
create index card_links_person on card_links (person_id);

-- What a person agreed, at the reader, to let the facility see; valid for 24 hours.
create table consents (
    id          bigint generated always as identity primary key,
    person_id   bigint not null references persons (id),
    party_id    bigint not null references parties (id),
    check_id    uuid not null,
    medication  boolean not null,
    checkups    boolean not null,
    diagnosis   boolean not null,
    surgery     boolean not null,
    given_at    timestamptz not null,
    expires_at  timestamptz not null
);
create index consents_person on consents (person_id, party_id, given_at);
