"""Budget estimates, their routing to Finance or Planning and Investment, and dossiers."""
