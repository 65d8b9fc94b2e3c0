-- What listings show of a version, stored when it settles so that listing
-- never decodes the per-series summary: the method and how many series fell
-- back to a simpler model.
ALTER TABLE versions ADD COLUMN method TEXT;
ALTER TABLE versions ADD COLUMN n_fallbacks BIGINT;

UPDATE versions SET
    method = summary::jsonb ->> 'method',
    n_fallbacks = (
        SELECT count(*) FROM jsonb_array_elements(summary::jsonb -> 'series') AS s
        WHERE s ->> 'fallback' IS NOT NULL
    )
WHERE summary IS NOT NULL;
