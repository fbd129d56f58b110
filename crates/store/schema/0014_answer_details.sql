-- What an answer says beyond the coverage itself.
--
-- The 特定疾病療養受療証 (specific-disease certificate) an insurer enrols with a coverage's
-- attributes: disease category 1-3, validity, and the monthly self-pay cap in yen.
alter table coverage_versions
    add column specific_disease text check (specific_disease in ('1', '2', '3')),
    add column specific_disease_valid_from date,
    add column specific_disease_valid_to date,
    add column specific_disease_self_pay text check (specific_disease_self_pay ~ '^[0-9]{1,7}$');

-- The reader's consents to show the high-cost limit and specific-disease certificates, beside
-- the four information consents; and a consent's withdrawal by the person, with their card.
-- The application may set withdrawn_at (once: see the trigger) and nothing else of a consent.
alter table consents
    add column limit_certificate boolean not null default false,
    add column specific_diseases boolean not null default false,
    add column withdrawn_at timestamptz;
create index consents_in_force on consents (person_id, party_id, expires_at)
    where withdrawn_at is null;

create function consents_only_withdrawn() returns trigger language plpgsql as $$
begin
    if old.withdrawn_at is not null
       or (new.id, new.person_id, new.party_id, new.check_id, new.medication, new.checkups,
           new.diagnosis, new.surgery, new.limit_certificate, new.specific_diseases,
           new.given_at, new.expires_at)
          is distinct from
          (old.id, old.person_id, old.party_id, old.check_id, old.medication, old.checkups,
           old.diagnosis, old.surgery, old.limit_certificate, old.specific_diseases,
           old.given_at, old.expires_at) then
        raise exception 'a consent is only ever withdrawn, once';
    end if;
    return new;
end $$;
create trigger consents_only_withdrawn before update on consents
    for each row execute function consents_only_withdrawn();
grant update (withdrawn_at) on consents to onshi_app;

-- 照会番号: a facility's own patient number for a coverage key, which its answers carry and no
-- other party sees. Keyed by the card key as the facility sends it, so registering one says
-- nothing about whether such a coverage exists.
create table reference_numbers (
    party_id       bigint not null references parties (id),
    insurer_number text not null check (insurer_number ~ '^[0-9]{8}$'),
    symbol         text not null,
    number         text not null,
    branch         text not null,
    reference      text not null check (length(reference) between 1 and 20),
    updated_at     timestamptz not null,
    primary key (party_id, insurer_number, number, symbol, branch)
);
grant select, insert, update on reference_numbers to onshi_app;
