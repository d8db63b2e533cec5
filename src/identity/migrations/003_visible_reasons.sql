-- identity 003: staff reasons must be readable, in the database too. Runs as the owner role.
--
-- StaffAccess.checkReason (the library) counts visible characters exactly, with Unicode
-- properties: at least 10 letters, numbers, punctuation marks or symbols. PostgreSQL's regular
-- expressions have no Unicode properties, so the database's own check strips the commonest
-- invisible ranges (controls, every space, zero-width and bidi format characters, fillers,
-- variation selectors, tags, private use, the combining-mark blocks) and counts what is left. It
-- strips only characters the library does not count either, so it never refuses a reason the
-- library accepted; it stops raw SQL (which also needs a live staff session id) from recording
-- twelve zero-width spaces. Idempotent.

CREATE OR REPLACE FUNCTION tenantry.visible_length(p_text text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT length(regexp_replace(p_text,
    '[\u0001-\u0020\u007F-\u00A0\u00AD\u0300-\u036F\u0483-\u0489\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7'
    '\u0610-\u061A\u061C\u064B-\u065F\u0670\u06D6-\u06DD\u06DF-\u06E4\u06E7\u06E8\u06EA-\u06ED\u115F\u1160\u1680'
    '\u17B4\u17B5\u180B-\u180F\u1AB0-\u1AFF\u1DC0-\u1DFF\u2000-\u200F\u2028-\u202F\u205F-\u206F\u20D0-\u20FF\u2800'
    '\u3000\u3164\uE000-\uF8FF\uFE00-\uFE0F\uFE20-\uFE2F\uFEFF\uFFA0\uFFF0-\uFFFB\U0001BCA0-\U0001BCA3'
    '\U0001D173-\U0001D17A\U000E0000-\U000E0FFF\U000F0000-\U0010FFFF]', '', 'g'));
$fn$;
REVOKE ALL ON FUNCTION tenantry.visible_length(text) FROM PUBLIC;

-- NOT VALID: grants recorded before keep their reasons; every new one is checked
DO $do$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conname = 'staff_grants_reason_visible'
                    AND c.conrelid = 'tenantry_private.staff_grants'::regclass) THEN
    ALTER TABLE tenantry_private.staff_grants
      ADD CONSTRAINT staff_grants_reason_visible CHECK (tenantry.visible_length(reason) >= 10) NOT VALID;
  END IF;
END
$do$;
