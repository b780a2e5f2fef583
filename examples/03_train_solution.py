"""Step 3a: create solutions (user-personalization and a popularity baseline), train versions, read metrics."""

from common import NAME, RECIPE, group_arn, personalize, wait_active

p = personalize()
group = group_arn(p)
versions = {}
for recipe in ("aws-user-personalization", "aws-popularity-count"):
    solution_arn = p.create_solution(name=f"{NAME}-{recipe[4:]}", datasetGroupArn=group,
                                     recipeArn=RECIPE + recipe, performAutoTraining=False)["solutionArn"]
    wait_active(lambda arn=solution_arn: p.describe_solution(solutionArn=arn), "solution")
    versions[recipe] = p.create_solution_version(solutionArn=solution_arn, trainingMode="FULL")["solutionVersionArn"]

for recipe, version_arn in versions.items():
    version = wait_active(lambda arn=version_arn: p.describe_solution_version(solutionVersionArn=arn), "solutionVersion")
    metrics = p.get_solution_metrics(solutionVersionArn=version_arn)["metrics"]
    print(f"{recipe:<26} {version['status']}  trained in {version['trainingHours'] * 3600:.1f} s  "
          f"NDCG@10 {metrics['normalized_discounted_cumulative_gain_at_10']:.3f}  "
          f"precision@10 {metrics['precision_at_10']:.3f}")
