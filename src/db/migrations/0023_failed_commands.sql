-- Version 23: the failed commands in time order. `--failed` (exit status
-- other than 0) had no index that could serve it (`<>` is no range of
-- `commands_by_exit`), so a report or search of failures read every
-- command through the index by start time: at a million rows, 9 % of
-- them failed, `report --by session --failed` took 0.51 s and `--by
-- day --failed` 0.20 s (0.42 and 0.14 s with this index). A partial
-- index holds the failed ones only: nothing for a command that succeeded.
CREATE INDEX commands_failed ON commands (started_at_us) WHERE exit_status <> 0;
