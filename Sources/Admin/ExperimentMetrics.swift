// The experiments section of /metrics, from ExperimentReport: units per variant (new this weight
// epoch, new since start, distinct exposed), units converted per goal, and the sample-ratio
// check (its p-value, the expected shares, whether it alarms). Distinct counts are sketch
// estimates (HyperLogLog, about 0.8% standard error); sum fleets with `show experiment --json`.
import Proxy
import Runtime

extension AdminMetrics {
    func experiments(_ w: inout PrometheusText) {
        let snapshot = server.snapshot
        guard !snapshot.experimentRoutes.isEmpty else { return }
        let reports = ExperimentReport.all(snapshot, registry: server.experiments, looks: ExperimentLooks())
        func labels(_ r: ExperimentReport, _ extra: String = "") -> String {
            "experiment=\"\(SeriesTable.escape(r.name))\",route=\"\(SeriesTable.escape(r.route))\"" + extra
        }
        func variant(_ name: String) -> String { ",variant=\"\(SeriesTable.escape(name))\"" }

        w.family("switchyard_experiment_new_units", .gauge,
                 "Units first assigned per variant in the current weight epoch (the sample-ratio check's counts).")
        for r in reports { for v in r.variants { w.sample("switchyard_experiment_new_units", labels(r, variant(v.name)), v.newUnits) } }
        w.family("switchyard_experiment_new_units_total", .counter, "Units first assigned per variant since start.")
        for r in reports {
            for v in r.variants { w.sample("switchyard_experiment_new_units_total", labels(r, variant(v.name)), v.newUnitsTotal) }
        }
        w.family("switchyard_experiment_expected_share", .gauge, "Each variant's share of new units by the current weights.")
        for r in reports {
            let total = r.variants.reduce(0) { $0 + $1.weight }
            for v in r.variants where total > 0 {
                w.sample("switchyard_experiment_expected_share", labels(r, variant(v.name)), Double(v.weight) / Double(total))
            }
        }
        w.family("switchyard_experiment_units_exposed", .gauge, "Distinct units served each variant since start (estimate).")
        for r in reports {
            for v in r.variants { w.sample("switchyard_experiment_units_exposed", labels(r, variant(v.name)), UInt64(v.exposed)) }
        }
        w.family("switchyard_experiment_units_converted", .gauge,
                 "Distinct units that reached each goal, by the variant they are assigned (estimate).")
        for r in reports {
            for g in r.goals {
                for (i, v) in r.variants.enumerated() where i < g.converted.count {
                    w.sample("switchyard_experiment_units_converted",
                             labels(r, ",goal=\"\(SeriesTable.escape(g.name))\"" + variant(v.name)), UInt64(g.converted[i]))
                }
            }
        }
        w.family("switchyard_experiment_srm_p_value", .gauge,
                 "Chi-square goodness-of-fit p-value of this epoch's new units against the weights (1 with too few).")
        for r in reports { w.sample("switchyard_experiment_srm_p_value", labels(r), r.srm?.pValue ?? 1) }
        w.family("switchyard_experiment_srm_mismatch", .gauge,
                 "1 while the sample ratio is off (p below the threshold with enough units), else 0.")
        for r in reports { w.sample("switchyard_experiment_srm_mismatch", labels(r), UInt64(r.srmMismatch ? 1 : 0)) }
        w.family("switchyard_experiment_weight_epoch", .gauge, "Weight epochs so far: a new one starts when the weights change.")
        for r in reports { w.sample("switchyard_experiment_weight_epoch", labels(r), UInt64(r.epoch)) }
        w.family("switchyard_experiment_exposures_dropped_total", .counter,
                 "Exposure lines dropped because the log's buffer was full (a slow disk).")
        for r in reports where r.exposureLog != nil {
            w.sample("switchyard_experiment_exposures_dropped_total", labels(r), r.exposuresDropped)
        }
    }
}
