-- Each record's place in its lane (1, 2, ...), so that a writer claiming a lane reads the lane's
-- record count from its last record through the (lane, id) index, instead of counting the
-- lane: at national volume a lane holds hundreds of millions of records, and counting them on
-- every claim (after any reconnect) took longer than the statement timeout.
--
-- Not part of the chained fields: `onshi audit verify` counts the records it walks and
-- compares that with the checkpoints, so a changed lane_seq cannot hide a deleted record.
alter table disclosures add column lane_seq bigint;

-- The lanes as this migration found them: records written before lane_seq are counted here,
-- once (one scan of the table, at the upgrade), so that no claim has to count them. A lane's
-- count is then its base plus the unnumbered records after the base's last id (written by an
-- older server during a rolling upgrade: few, and found through the (lane, id) index).
create table audit_lane_bases (
    lane smallint primary key,
    last_id bigint not null,
    records bigint not null
);
insert into audit_lane_bases (lane, last_id, records)
select lane, max(id), count(*) from disclosures group by lane;

do $$ begin
    if exists (select 1 from pg_roles where rolname = 'onshi_app') then
        grant select on audit_lane_bases to onshi_app;
    end if;
end $$;
