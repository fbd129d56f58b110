-- The public keys that sign the proofs of check (Ed25519), published at /.well-known/jwks.json.
-- A server adds its current key when it starts (once per key): after a rotation the old keys
-- stay here and in the JWKS, so that every proof ever given still verifies. The service only
-- reads and adds rows; retiring a key is an operator's decision made as the schema owner.
create table proof_keys (
    kid text primary key,
    public_key bytea not null unique check (octet_length(public_key) = 32),
    first_published_at timestamptz not null default now()
);

do $$ begin
    if exists (select 1 from pg_roles where rolname = 'onshi_app') then
        grant select, insert on proof_keys to onshi_app;
    end if;
end $$;
