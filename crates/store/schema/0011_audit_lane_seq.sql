-- Each record's place in its lane (1, 2, ...), so that a writer claiming a lane reads the lane's
-- record count from its last record through the (lane, id) index, instead of counting the
-- lane: at national volume a lane holds hundreds of millions of records, and counting them on
-- every claim (after any reconnect) took longer than the statement timeout. Records written
-- before this column have none; the first claim of such a lane counts it once.
--
-- Not part of the chained fields: `onshi audit verify` counts the records it walks and
-- compares that with the checkpoints, so a changed lane_seq cannot hide a deleted record.
alter table disclosures add column lane_seq bigint;
