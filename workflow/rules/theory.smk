# Theory questions 1-5: each rule writes results/theory/q{N}/numbers.json and its figures.
# config["theory"] is validated and has every default filled (cmpt726.config.validate_config).


def theory_q5_data(wildcards):
    """Q5's data file as an input when one is configured, so editing it reruns Q5."""
    path = config["theory"]["q5"]["data"]
    return {"data": path} if path else {}


rule theory_q1:
    input:
        code=package_sources("theory.q1_softmax"),
    output:
        numbers="results/theory/q1/numbers.json",
        regions="results/theory/q1/regions.png",
        boundary_probs="results/theory/q1/boundary_probs.png",
        region_probs="results/theory/q1/region_probs.png",
    log:
        "results/logs/theory/q1.log",
    benchmark:
        "results/benchmarks/theory/q1.tsv"
    threads: 1
    params:
        settings=config["theory"]["q1"],
    script:
        "../scripts/theory_q1.py"


rule theory_q2:
    input:
        code=package_sources("theory.q2_glm"),
    output:
        numbers="results/theory/q2/numbers.json",
        functions="results/theory/q2/functions.png",
        regions="results/theory/q2/regions.png",
        feature_space="results/theory/q2/feature_space.png",
    log:
        "results/logs/theory/q2.log",
    benchmark:
        "results/benchmarks/theory/q2.tsv"
    threads: 1
    params:
        settings=config["theory"]["q2"],
    script:
        "../scripts/theory_q2.py"


rule theory_q3:
    input:
        code=package_sources("theory.q3_backprop"),
    output:
        numbers="results/theory/q3/numbers.json",
        formulas="results/theory/q3/formulas.png",
        network="results/theory/q3/network.png",
        fd_error="results/theory/q3/fd_error.png",
    log:
        "results/logs/theory/q3.log",
    benchmark:
        "results/benchmarks/theory/q3.tsv"
    threads: 1
    params:
        settings=config["theory"]["q3"],
    script:
        "../scripts/theory_q3.py"


rule theory_q4:
    input:
        code=package_sources("theory.q4_vanishing"),
    output:
        numbers="results/theory/q4/numbers.json",
        activations="results/theory/q4/activations.png",
        gradient_norms="results/theory/q4/gradient_norms.png",
        dead_relu="results/theory/q4/dead_relu.png",
    log:
        "results/logs/theory/q4.log",
    benchmark:
        "results/benchmarks/theory/q4.tsv"
    threads: 1
    params:
        settings=config["theory"]["q4"],
    script:
        "../scripts/theory_q4.py"


rule theory_q5:
    input:
        unpack(theory_q5_data),
        code=package_sources("theory.q5_logreg"),
    output:
        numbers="results/theory/q5/numbers.json",
        nll="results/theory/q5/nll.png",
        slope_intercept="results/theory/q5/slope_intercept.png",
        separators="results/theory/q5/separators.png",
        sgd="results/theory/q5/sgd.png",
    log:
        "results/logs/theory/q5.log",
    benchmark:
        "results/benchmarks/theory/q5.tsv"
    threads: 1
    params:
        settings=config["theory"]["q5"],
    script:
        "../scripts/theory_q5.py"
