-- A person's own view of who looked at their data (src/access_log.rs) starts with a challenge
-- that no party asked for: the card's signature over its nonce is the only credential. Such a
-- challenge has the audience 'self' and no party; a facility's has the audience 'party'. Each
-- endpoint accepts only challenges of its own audience, so a nonce signed at a reception desk
-- cannot open the person's access log, nor the other way round.
--
-- Expand only: the default keeps servers that do not know the column inserting valid rows.
alter table challenges alter column party_id drop not null;
alter table challenges add column audience text not null default 'party'
    check (audience in ('party', 'self'));
alter table challenges add constraint challenges_audience_party
    check ((audience = 'self') = (party_id is null));
