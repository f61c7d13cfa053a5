"""What goes wrong with the warehouse file, in words a person can act on."""


class WarehouseError(Exception):
    """The warehouse file cannot be used as asked."""


class WarehouseBusyError(WarehouseError):
    """Another process held the warehouse's write lock for longer than we were willing to wait."""
