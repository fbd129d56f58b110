-- onshi: no-transaction
create unique index concurrently if not exists bulk_jobs_idempotency
    on bulk_jobs (party_id, idempotency_key) where idempotency_key is not null;
