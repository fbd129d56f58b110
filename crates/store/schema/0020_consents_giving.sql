-- onshi: no-transaction
-- The consents a check reads (`consents_in_force`): only choices that give something can be in
-- force for a kind. A card check records the patient's choices every time, often none, and a
-- desk may check the same card many times a day: reading through this index, the choices that
-- gave nothing cost the check nothing.
create index concurrently if not exists consents_giving on consents (person_id, party_id, given_at)
    where withdrawn_at is null
      and (medication or checkups or diagnosis or surgery or limit_certificate or specific_diseases);
