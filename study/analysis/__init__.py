"""Pure numbers for studies (numpy/scipy, no Django): metrics, ceilings, aggregation, allocation."""
