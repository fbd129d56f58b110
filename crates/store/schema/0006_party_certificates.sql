-- Client certificates bound to a party's token (mutual TLS, as the real system's facility
-- certificates). Only the SHA-256 of the certificate's DER is kept: it is all the check needs,
-- and the certificate itself stays with the party. A party with no row here authenticates with
-- its token alone; a party with rows must also present one of these certificates over TLS.
create table party_certificates (
    party_id    bigint not null references parties (id),
    fingerprint bytea not null check (length(fingerprint) = 32),
    created_at  timestamptz not null default now(),
    primary key (party_id, fingerprint)
);
