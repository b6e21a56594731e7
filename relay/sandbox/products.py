"""Sandbox products: what one holds, and how Brightpearl renders it in a GET and in a ``product-search`` row.

A product has ``updatedOn`` from the start (equal to ``createdOn``) and a ``version`` that is the epoch
milliseconds of its last update, as recorded; the sandbox moves ``version`` on by at least one on every update
so that two changes within one second still differ (a custom field's edit too; custom fields are rendered only when
``includeOptional`` asks, API.md 6.1). Catalogues run to 100,000 products, so a product keeps its
search row once made until it changes, and nothing here walks the whole catalogue per request.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from relay.sandbox.orders import CustomFieldsAsked, CustomValue, render_custom_fields, set_custom_fields, whole_second
from relay.sandbox.search import Column, DataType, SearchTable
from relay.sandbox.times import format_in_offset, to_ms

PRODUCT_SEARCH_TABLE = SearchTable(
    columns=(
        Column("productId", DataType.IDSET, "productCategoryMembership"),
        Column("productName", DataType.SEARCH_STRING),
        Column("SKU", DataType.STRING),
        Column("barcode", DataType.STRING),
        Column("EAN", DataType.STRING),
        Column("UPC", DataType.STRING),
        Column("ISBN", DataType.STRING),
        Column("MPN", DataType.STRING),
        Column("stockTracked", DataType.BOOLEAN),
        Column("salesChannelName", DataType.STRING, filterable=False),
        Column("createdOn", DataType.PERIOD),
        Column("updatedOn", DataType.PERIOD),
        Column("brightpearlCategoryCode", DataType.IDSET, sortable=False),
        Column("productGroupId", DataType.INTEGER),
        Column("brandId", DataType.IDSET),
        Column("productTypeId", DataType.IDSET),
        Column("productStatus", DataType.STRING),
        Column("primarySupplierId", DataType.IDSET),
    ),
    id_column="productId",
)

SALES_CHANNEL = "Brightpearl"
BRAND_ID = 74  # the recorded product 1007's
PRODUCT_TYPE_ID = 1
CATEGORY_ID = 296  # the recorded product 1007's only category
ProductStatus = Literal["LIVE", "DISCONTINUED"]
PRODUCT_CUSTOM_FIELDS = ("PCF_COLOUR", "PCF_WARRANTY")  # the product custom fields every sandbox account defines


@dataclass(slots=True)
class SandboxProduct:
    """One product and the little of it that changes."""

    id: int
    sku: str
    name: str
    created_on: datetime
    updated_on: datetime
    version: int
    stock_tracked: bool = True
    status: str = "LIVE"
    barcode: str = ""
    cached_row: dict[str, Any] | None = None  # the search row, until the product changes
    custom_fields: dict[str, CustomValue] = field(default_factory=dict)  # the set ones, by code

    def change(
        self,
        now: datetime,
        *,
        name: str | None = None,
        sku: str | None = None,
        barcode: str | None = None,
        status: str | None = None,
        custom_fields: Mapping[str, CustomValue] | None = None,
    ) -> None:
        """Change the fields given (a null custom field is unset): ``updatedOn`` now, a new ``version``."""
        set_custom_fields(PRODUCT_CUSTOM_FIELDS, self.custom_fields, custom_fields or {})
        self.name = self.name if name is None else name
        self.sku = self.sku if sku is None else sku
        self.barcode = self.barcode if barcode is None else barcode
        self.status = self.status if status is None else status
        self.updated_on = whole_second(now)
        self.version = max(to_ms(self.updated_on), self.version + 1)
        self.cached_row = None

    def search_row(self) -> dict[str, Any]:
        """The product as a ``product-search`` row, by column name (made once per version)."""
        if self.cached_row is None:
            self.cached_row = {
                "productId": self.id,
                "productName": self.name,
                "SKU": self.sku,
                "barcode": self.barcode,
                "EAN": None,
                "UPC": None,
                "ISBN": None,
                "MPN": None,
                "stockTracked": self.stock_tracked,
                "salesChannelName": SALES_CHANNEL,
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "brightpearlCategoryCode": CATEGORY_ID,
                "productGroupId": None,
                "brandId": BRAND_ID,
                "productTypeId": PRODUCT_TYPE_ID,
                "productStatus": self.status,
                "primarySupplierId": None,
            }
        return self.cached_row


def new_products(
    ids: Iterable[int], sku_prefix: str, name: str | None, now: datetime, *, stock_tracked: bool = True
) -> list[SandboxProduct]:
    """Products made ``now``: SKU ``{sku_prefix}{id}``, named ``name`` or "Product {id}"; ``updatedOn`` equal to
    ``createdOn``, ``version`` its epoch milliseconds. One pass with the time worked out once: 100,000 at once
    is what benchmarks ask for."""
    created = whole_second(now)
    version = to_ms(created)
    return [
        SandboxProduct(pid, f"{sku_prefix}{pid}", name or f"Product {pid}", created, created, version, stock_tracked)
        for pid in ids
    ]


class CategoryMembership(Mapping[int, list[int]]):
    """``reference.productCategoryMembership``: each product's category ids, looked up per product rather than
    built for the whole catalogue on every search."""

    def __init__(self, products: Mapping[int, SandboxProduct]) -> None:
        self._products = products

    def __getitem__(self, product_id: int) -> list[int]:
        if product_id not in self._products:
            raise KeyError(product_id)
        return [CATEGORY_ID]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._products

    def __iter__(self) -> Iterator[int]:
        return iter(self._products)

    def __len__(self) -> int:
        return len(self._products)


def search_reference(products: Mapping[int, SandboxProduct]) -> dict[str, Mapping[int, Any]]:
    return {"productCategoryMembership": CategoryMembership(products)}


_DESCRIPTION = {"languageCode": "en", "text": "", "format": "HTML_FRAGMENT"}
_WAREHOUSE_SETTINGS = {"defaultLocationId": 0, "overflowLocationId": 0, "reorderLevel": 0, "reorderQuantity": 0}


def render_product(
    product: SandboxProduct,
    warehouse_ids: tuple[int, ...],
    offset_minutes: int,
    custom_fields: CustomFieldsAsked = "none",
) -> dict[str, Any]:
    """The product as ``GET /product-service/product/{id}`` returns it, key for key in the recorded order; with
    ``customFields`` last when ``includeOptional`` asked for them."""
    body = {
        "id": product.id,
        "brandId": BRAND_ID,
        "productTypeId": PRODUCT_TYPE_ID,
        "identity": {"sku": product.sku, "barcode": product.barcode},
        "featured": False,
        "stock": {
            "stockTracked": product.stock_tracked,
            "weight": {"magnitude": 0.0},
            "dimensions": {"length": 0.0, "height": 0.0, "width": 0.0, "volume": 0.0},
        },
        "financialDetails": {"taxable": False, "taxCode": {"id": 2, "code": "T"}},
        "salesChannels": [
            {
                "salesChannelName": SALES_CHANNEL,
                "productName": product.name,
                "productCondition": "new",
                "categories": [{"categoryCode": str(CATEGORY_ID)}],
                "description": dict(_DESCRIPTION),
                "shortDescription": dict(_DESCRIPTION),
            }
        ],
        "composition": {"bundle": False},
        "createdOn": format_in_offset(product.created_on, offset_minutes),
        "updatedOn": format_in_offset(product.updated_on, offset_minutes),
        "warehouses": {str(warehouse_id): dict(_WAREHOUSE_SETTINGS) for warehouse_id in warehouse_ids},
        "nominalCodeStock": "1001",
        "nominalCodePurchases": "5000",
        "nominalCodeSales": "4000",
        "seasonIds": [],
        "reporting": {},
        "status": product.status,
        "salesPopupMessage": "",
        "warehousePopupMessage": "",
        "version": product.version,
    }
    if custom_fields != "none":
        body["customFields"] = render_custom_fields(PRODUCT_CUSTOM_FIELDS, product.custom_fields, custom_fields)
    return body
