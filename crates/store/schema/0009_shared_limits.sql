-- Abuse limits shared by every onshi server on this database (src/api/limits/).
--
-- party_budgets is each party's token bucket and daily count. Servers take tokens from it in
-- leases of about a second of the party's rate (onshi_take_budget), so a party's rate holds
-- across servers within one lease per server. It is unlogged: no WAL per lease, and a crash of
-- the database only refills every bucket, which errs towards the party, never towards a leak.
create unlogged table party_budgets (
    party_id    bigint primary key,
    tokens      double precision not null,
    refilled_at timestamptz not null,
    -- The Japanese calendar day `used` counts for.
    quota_day   date not null,
    used        bigint not null default 0
);

-- Flags raised against a party (suspected enumeration). An active flag (cleared_at null)
-- refuses the party's every request on every server until an administrator clears it; the rows
-- stay as the history of what was flagged, when, and who cleared it.
create table party_flags (
    id          bigint generated always as identity primary key,
    party_id    bigint not null references parties (id),
    reason      text not null,
    flagged_at  timestamptz not null default now(),
    -- What the watch saw in its window: distinct keys that found nothing, and distinct keys asked.
    misses      integer not null,
    answers     integer not null,
    cleared_at  timestamptz,
    cleared_by  text
);
create unique index party_flags_active on party_flags (party_id) where cleared_at is null;

-- Takes `need` tokens (plus up to `extra`, the lease a server keeps for the party's next
-- requests) from the party's bucket, refilled at `rate` a second up to `burst`, and counts them
-- against `quota` a day (0: none). A need larger than the burst is granted from a full bucket,
-- which then goes into debt: a 10,000-query batch costs 10,000 tokens whatever the burst.
-- Answers the tokens granted (0 when refused), the seconds until the need could be granted,
-- whether the day's quota is spent, and whether the party is flagged.
create function onshi_take_budget(
    p_party bigint, p_need float8, p_extra float8, p_rate float8, p_burst float8,
    p_quota bigint, p_day date,
    out granted float8, out wait_seconds float8, out quota_spent boolean, out flagged boolean)
language plpgsql as $$
declare
    b party_budgets;
    avail float8;
    now_ timestamptz := clock_timestamp();
begin
    granted := 0; wait_seconds := 0; quota_spent := false;
    flagged := exists (select 1 from party_flags f where f.party_id = p_party and f.cleared_at is null);
    if flagged then
        return;
    end if;
    insert into party_budgets (party_id, tokens, refilled_at, quota_day, used)
    values (p_party, p_burst, now_, p_day, 0)
    on conflict (party_id) do nothing;
    select * into b from party_budgets where party_id = p_party for update;
    if b.quota_day <> p_day then
        b.quota_day := p_day;
        b.used := 0;
    end if;
    avail := least(p_burst, b.tokens + greatest(0, extract(epoch from now_ - b.refilled_at)) * p_rate);
    if p_quota > 0 and b.used + ceil(p_need) > p_quota then
        quota_spent := true;
    elsif avail >= p_need then
        granted := p_need + least(avail - p_need, p_extra);
    elsif avail >= p_burst then
        granted := p_need;
    else
        wait_seconds := (least(p_need, p_burst) - avail) / p_rate;
    end if;
    if p_quota > 0 and granted > 0 then
        granted := least(granted, (p_quota - b.used)::float8);
    end if;
    update party_budgets
       set tokens = avail - granted, refilled_at = now_, quota_day = b.quota_day,
           used = b.used + ceil(granted)::bigint
     where party_id = p_party;
end
$$;

-- The service's own database role (created by 0008 where present) takes leases and raises flags;
-- only an administrator's session clears them.
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'onshi_app') then
        grant select, insert, update on party_budgets to onshi_app;
        grant select, insert on party_flags to onshi_app;
        grant execute on function onshi_take_budget(bigint, float8, float8, float8, float8, bigint, date) to onshi_app;
    end if;
end
$$;
