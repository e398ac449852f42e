"""The PromQL name extractor the dashboard and rule checks rely on."""

from __future__ import annotations

from tests.unit.exporter.promql import exposed_names, metric_names


def test_functions_labels_durations_and_modifiers_are_not_metric_names():
    expr = ('histogram_quantile(0.95, sum by (le, task) (rate(candleflow_task_runtime_seconds_bucket'
            '{task=~".*stage.*"}[$__rate_interval])))')
    assert metric_names(expr) == {"candleflow_task_runtime_seconds_bucket"}


def test_both_sides_of_binary_operators_and_vector_matching_are_found():
    expr = 'candleflow_queue_depth > 0 and on(queue) candleflow_queue_consumers == 0 or vector(0)'
    assert metric_names(expr) == {"candleflow_queue_depth", "candleflow_queue_consumers"}
    assert metric_names("time() - max(process_start_time_seconds{job=\"exporter\"}) > 4200") == {
        "process_start_time_seconds"}


def test_grafana_label_values_names_only_its_metric():
    assert metric_names('label_values(candleflow_data_age_seconds{exchange="$exchange"}, symbol)') == {
        "candleflow_data_age_seconds"}
    assert metric_names('label_values(candleflow_data_age_seconds{exchange="$exchange", symbol="$symbol"}, '
                        'timeframe)') == {"candleflow_data_age_seconds"}


def test_numbers_with_exponents_are_not_names():
    assert metric_names("candleflow_data_age_seconds > 1e3") == {"candleflow_data_age_seconds"}


def test_exposed_names_expand_counters_and_histograms():
    text = ("# HELP a_b x\n# TYPE a_b counter\n# TYPE c_total counter\n# TYPE h histogram\n# TYPE g gauge\n"
            'g 1.0\nh_bucket{le="+Inf"} 1.0\n')
    assert {"a_b_total", "c_total", "h_bucket", "h_sum", "h_count", "g"} <= exposed_names(text)
    assert "c_total_total" not in exposed_names(text)
