"""Step 3b + 4: deploy the trained version in a campaign, then get recommendations for a user."""

from common import NAME, find, personalize, runtime, wait_active

p, rt = personalize(), runtime()
solution_arn = find(p, "list_solutions", "solutions", f"{NAME}-user-personalization", "solutionArn")
version_arn = p.describe_solution(solutionArn=solution_arn)["solution"]["latestSolutionVersion"]["solutionVersionArn"]
campaign_arn = p.create_campaign(name=f"{NAME}-campaign", solutionVersionArn=version_arn,
                                 minProvisionedTPS=1)["campaignArn"]
wait_active(lambda: p.describe_campaign(campaignArn=campaign_arn), "campaign")

response = rt.get_recommendations(campaignArn=campaign_arn, userId="user1", numResults=5)
print("recommended for user1:", [(item["itemId"], round(item.get("score", 0), 3)) for item in response["itemList"]])
print("recommendationId:", response["recommendationId"])
# GetPersonalizedRanking needs a campaign of a PERSONALIZED_RANKING recipe (aws-personalized-ranking);
# asking this USER_PERSONALIZATION campaign for it is refused with InvalidInputException, as in Personalize.
