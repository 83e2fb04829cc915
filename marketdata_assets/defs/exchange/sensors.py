"""Symbol discovery: keep the dynamic `symbols` partitions in line with the universe and exchangeInfo.

- a symbol of the configured universe that is a trading perpetual is added;
- a symbol removed from the configured universe is removed (its rows stay in the store);
- a symbol still configured but no longer trading (delisted, settling) keeps its partitions, so its
  history stays visible, but the daily schedule stops requesting it (it reads `exchange_info`).
When what the exchange says about the universe changes, the sensor also refreshes `exchange_info`.
"""

import hashlib
import json

import dagster as dg

from marketdata_assets.binance.exchange_info import parse_exchange_info
from marketdata_assets.defs.constants import EXCHANGE_INFO_KEY, REASON_DISCOVERY, TAG_REASON
from marketdata_assets.defs.partitions import SYMBOLS_PARTITIONS_NAME, symbols_partitions
from marketdata_assets.defs.resources import MarketDataResource


def build_symbol_discovery_sensor(universe: tuple[str, ...], interval_seconds: int = 3600) -> dg.SensorDefinition:
    @dg.sensor(
        name="symbol_discovery",
        minimum_interval_seconds=interval_seconds,
        target=dg.AssetSelection.assets(EXCHANGE_INFO_KEY),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds the configured symbols that are trading perpetuals to the `symbols` partitions, "
                    "removes symbols no longer configured, and refreshes exchange_info when it changed.",
    )
    def symbol_discovery(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        from marketdata_assets.binance.rest import BinanceRestClient

        rest = BinanceRestClient.from_settings(marketdata.settings())
        try:
            symbols = parse_exchange_info(rest.exchange_info())
        finally:
            rest.close()
        wanted = [s for s in universe if s in symbols and symbols[s].is_trading_perpetual]
        current = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        add = [s for s in wanted if s not in current]
        remove = sorted(current - set(universe))
        state = {s: symbols[s].as_dict() for s in universe if s in symbols}
        digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]

        requests = []
        if add:
            requests.append(symbols_partitions.build_add_request(add))
        if remove:
            requests.append(symbols_partitions.build_delete_request(remove))
        runs = []
        if digest != context.cursor:
            runs.append(dg.RunRequest(run_key=f"exchange_info:{digest}", asset_selection=[EXCHANGE_INFO_KEY],
                                      tags={TAG_REASON: REASON_DISCOVERY}))
        not_trading = sorted(set(universe) - set(wanted))
        if not requests and not runs:
            return dg.SkipReason(f"symbols unchanged: {len(current)} partition(s); not trading or not listed: "
                                 f"{', '.join(not_trading) or 'none'}")
        context.log.info(f"add {add}, remove {remove}; not trading or not listed: {not_trading}")
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests, cursor=digest)

    return symbol_discovery
