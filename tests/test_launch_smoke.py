def test_learner_launch_lands_on_home(client, lti):
    token = lti.launch(user="5", activity="consultations")
    page = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    assert page.status_code == 200
