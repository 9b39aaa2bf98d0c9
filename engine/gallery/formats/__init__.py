"""One reader per tool's way of storing its parameters; ``engine.gallery.read`` picks one."""
