"""News providers: each returns the articles published since its persisted cursor."""
