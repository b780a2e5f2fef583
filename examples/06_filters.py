"""Step 3d: filters: a static one (hide what the user watched) and one with a parameter (a genre chosen per call)."""

from common import NAME, find, group_arn, personalize, runtime, wait_active

p, rt = personalize(), runtime()
group = group_arn(p)
campaign_arn = find(p, "list_campaigns", "campaigns", f"{NAME}-campaign", "campaignArn")

unseen_arn = p.create_filter(name=f"{NAME}-unseen", datasetGroupArn=group,
                             filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')["filterArn"]
genre_arn = p.create_filter(name=f"{NAME}-genre", datasetGroupArn=group,
                            filterExpression="INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)")["filterArn"]
for arn in (unseen_arn, genre_arn):
    wait_active(lambda arn=arn: p.describe_filter(filterArn=arn), "filter")

unseen = rt.get_recommendations(campaignArn=campaign_arn, userId="user3", numResults=5, filterArn=unseen_arn)
print("not yet watched:", [i["itemId"] for i in unseen["itemList"]])
comedies = rt.get_recommendations(campaignArn=campaign_arn, userId="user3", numResults=5, filterArn=genre_arn,
                                  filterValues={"GENRE": '"Comedy"'})  # values are quoted, several: '"A","B"'
print("comedies only:  ", [i["itemId"] for i in comedies["itemList"]])
