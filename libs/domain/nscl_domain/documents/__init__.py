"""The documents officials sign: the provincial annual report and the phase reviews,
rendered from published rollups as DOCX and XLSX and kept as immutable artefacts."""
