"""shop: the Musubi tutorials' sample project."""
