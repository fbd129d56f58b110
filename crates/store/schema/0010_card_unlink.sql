-- Unlinking a card (by its holder with card and PIN, or by an administrator) removes its row
-- from card_links: the one deletion the application role may make. What it removed stays on
-- record as the `card.unlink` disclosure, which the role can neither change nor delete.
grant delete on card_links to onshi_app;
