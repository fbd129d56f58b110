-- 公費 (public expense) and 医療扶助 (public medical assistance).
--
-- A payer (a municipality or welfare office) is a party that owns 公費負担者番号s, as an
-- insurer owns insurer numbers, and loads the persons its numbers cover.
alter table parties drop constraint parties_role_check;
alter table parties add constraint parties_role_check
    check (role in ('facility', 'claims', 'insurer', 'payer', 'admin'));

create table party_payers (
    party_id     bigint not null references parties (id),
    payer_number text not null check (payer_number ~ '^[0-9]{8}$'),
    primary key (party_id, payer_number)
);

-- One row per payer Idempotency-Key, as enrollment_batches for insurers.
create table public_expense_batches (
    id          text primary key check (length(id) between 1 and 200),
    party_id    bigint not null references parties (id),
    status      text not null check (status in ('applied', 'rejected')),
    report      jsonb not null,
    received_at timestamptz not null default now()
);

-- A person's 公費 under one payer and recipient number, from valid_from until valid_to
-- (inclusive; open when null). The birth date is the payer's record, matched by a check by
-- numbers as a coverage's is.
create table public_expenses (
    id               bigint generated always as identity primary key,
    person_id        bigint not null references persons (id),
    payer_number     text not null check (payer_number ~ '^[0-9]{8}$'),
    recipient_number text not null check (recipient_number ~ '^[0-9]{7}$'),
    birth_date       date not null,
    valid_from       date not null,
    valid_to         date,
    self_pay_cap     integer check (self_pay_cap between 0 and 9999999),
    batch_id         text not null,
    line             integer not null,
    check (valid_to is null or valid_to >= valid_from),
    unique (payer_number, recipient_number, valid_from)
);
create index public_expenses_person on public_expenses (person_id);

-- 医療扶助 (法別 12): the 医療券 (medical) and 調剤券 (dispensing) tickets a welfare office
-- issues, month by month, naming the facility that may treat or dispense.
create table assistance_tickets (
    public_expense_id bigint not null references public_expenses (id),
    month             date not null check (extract(day from month) = 1),
    facility_code     text not null check (facility_code ~ '^[0-9]{10}$'),
    ticket            text not null check (ticket in ('medical', 'dispensing')),
    batch_id          text not null,
    line              integer not null,
    primary key (public_expense_id, month, facility_code, ticket)
);

grant select, insert on party_payers, public_expense_batches, assistance_tickets to onshi_app;
grant select, insert, update on public_expenses to onshi_app;
