"""The catalog: the typed model of fleet.yaml and its loader."""

from console.catalog.load import CatalogError, load_catalog, parse_catalog
from console.catalog.model import Catalog

__all__ = ["Catalog", "CatalogError", "load_catalog", "parse_catalog"]
