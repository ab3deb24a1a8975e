"""Photo data builders (Open Clip Art, GCompris, Tux Paint): scripts that make manifests from packages."""
