-- Version 10: whether a window-renamed event was tmux's automatic renaming
-- (the window named after the program running in it: one event for every
-- program run) or someone's `rename-window`. NULL for other events and for
-- renames recorded before this version. Hashed in the event chain only when
-- not NULL, so that every hash stored before stays valid.
ALTER TABLE tmux_events ADD COLUMN automatic_rename INTEGER;
