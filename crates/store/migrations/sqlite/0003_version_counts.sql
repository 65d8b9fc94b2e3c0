-- What listings show of a version, stored when it settles so that listing
-- never decodes the per-series summary: the method and how many series fell
-- back to a simpler model.
ALTER TABLE versions ADD COLUMN method TEXT;
ALTER TABLE versions ADD COLUMN n_fallbacks INTEGER;

UPDATE versions SET
    method = json_extract(summary, '$.method'),
    n_fallbacks = (
        SELECT count(*) FROM json_each(summary, '$.series') AS s
        WHERE json_extract(s.value, '$.fallback') IS NOT NULL
    )
WHERE summary IS NOT NULL;
